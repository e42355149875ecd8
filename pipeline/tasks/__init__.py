"""Mining tasks: relation extraction recipes, entity tagging, scorers."""
