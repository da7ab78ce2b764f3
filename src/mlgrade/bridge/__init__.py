"""The kernel bridge: how graders talk to the learner's live kernel, with plain data only."""
