"""Memory tasks: working memory in prefrontal attractors, one-shot associative recall in the hippocampus."""
