"""An example rlvr grader plugin. See README.md."""
