from tiles._fixtures import source, store  # noqa: F401 - pytest finds fixtures by name
