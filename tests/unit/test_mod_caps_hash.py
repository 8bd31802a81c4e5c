"""XEP-0115 §5.2 and §5.3: the verification string of the specification's own examples."""

from __future__ import annotations

from meerkat.modules.caps import forms_of, identities_of, verification_string
from meerkat.xmpp.stream import parse_element

FEATURES = [
    "http://jabber.org/protocol/caps",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/muc",
]


def test_simple_example_gives_the_published_hash() -> None:
    ver = verification_string([("client", "pc", "", "Exodus 0.9.1")], FEATURES)
    assert ver == "QgayPKawpkPSDYmwT/WM94uAlu0="


def test_feature_order_does_not_matter() -> None:
    ver = verification_string([("client", "pc", "", "Exodus 0.9.1")], reversed(FEATURES))
    assert ver == "QgayPKawpkPSDYmwT/WM94uAlu0="


def test_complex_example_with_languages_and_a_form_gives_the_published_hash() -> None:
    info = parse_element(
        '<query xmlns="http://jabber.org/protocol/disco#info">'
        '<identity xml:lang="en" category="client" name="Psi 0.11" type="pc"/>'
        '<identity xml:lang="el" category="client" name="Ψ 0.11" type="pc"/>'
        '<x xmlns="jabber:x:data" type="result">'
        '<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:dataforms:softwareinfo</value>'
        "</field>"
        '<field var="ip_version"><value>ipv4</value><value>ipv6</value></field>'
        '<field var="os"><value>Mac</value></field>'
        '<field var="os_version"><value>10.5.1</value></field>'
        '<field var="software"><value>Psi</value></field>'
        '<field var="software_version"><value>0.11</value></field>'
        "</x></query>"
    )
    identities = identities_of(info.find_all("identity"))
    forms = forms_of(info.find_all("x", "jabber:x:data"))
    assert verification_string(identities, FEATURES, forms) == "q07IKJEyjvHSyhy//CH0CxmKi8w="
