"""The private set intersection family: PSI cardinality, intersection, labelled PSI, JOIN ON id."""
