from tests.backends import store, store_spec  # noqa: F401  (fixtures)
