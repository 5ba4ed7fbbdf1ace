"""The operator's command, `bind-ha` (also `kubectl bind-ha`): see bind_ha.cli.main.

It runs on an operator's workstation, not in the pods: the chart does not ship it
(chart/.helmignore). Pure parts: model, render, plan, clients, names; the API adapter:
api, release, actions.
"""
