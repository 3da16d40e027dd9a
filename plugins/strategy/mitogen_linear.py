"""Mitogen's linear strategy, found through ansible.cfg's `strategy_plugins`.

Mitogen (installed with Farmhand) keeps one Python interpreter per host for the whole run and
sends it each module's code once, where stock Ansible starts a new interpreter on the host for
every task. Its own plugin directory sits inside site-packages, whose path differs per install;
this file names the same strategy at a path relative to ansible.cfg.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
