"""The kernel: hooks, accumulators, routing, sessions, IQ dispatch and modules. No sockets."""

from .acc import Acc
from .clock import Clock, ManualClock, SystemClock
from .hooks import STOP, Hook, HookRegistry
from .iq import IqDispatcher, IqSpec, iq_result
from .loopwatch import LoopMonitor
from .modules import HookSpec, Module, ModuleContext, ModuleManager, NoConfig
from .router import Router
from .sessions import SessionManager, SessionRecord

__all__ = [
    "STOP",
    "Acc",
    "Clock",
    "Hook",
    "HookRegistry",
    "HookSpec",
    "IqDispatcher",
    "IqSpec",
    "LoopMonitor",
    "ManualClock",
    "Module",
    "ModuleContext",
    "ModuleManager",
    "NoConfig",
    "Router",
    "SessionManager",
    "SessionRecord",
    "SystemClock",
    "iq_result",
]
