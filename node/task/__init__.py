"""A task's life on a node, one module per step in flow order.

announce (params by gossip, request, fetch) -> seat (whether to offer one; policy in
``policy``) -> committee (join intents, form_committee) -> inputs (owners' shares) ->
compute (through an engine, ``node.engines``) -> attest (sign once, share signatures) ->
report -> settle (finalize, disputes). ``worker`` runs the steps for a held seat, ``events``
maps chain events onto them and ``recover`` resumes held seats after a restart. The task state
is ``state.TaskState``; the shared services a step uses are ``context.NodeContext``.
"""
