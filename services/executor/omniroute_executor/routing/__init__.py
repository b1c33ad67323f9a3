"""Routing: attempt plans (combos, account selection) and the strategies that order them."""

from omniroute_executor.routing.plan import Plan, RouteConfig, build_plan
from omniroute_executor.routing.strategies import Candidate, RoutingStats, order

__all__ = ["Candidate", "Plan", "RouteConfig", "RoutingStats", "build_plan", "order"]
