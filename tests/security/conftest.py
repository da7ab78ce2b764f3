"""The red-team target assignment holds hidden graders: they are run by mlgrade, not collected."""

collect_ignore = ["assignments"]
