"""Applications as every part sees them: the lifecycle (states, moves, labels), what a person signs, and the\ntyped fields of a form. Pure domain: no database, no HTTP."""
