from tests.backends import shared_store_spec, store, store_spec  # noqa: F401  (fixtures)
