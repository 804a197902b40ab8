"""Event classes of the store contract (type names prefixed ``conf_`` to stay out of the way)."""

from esctl_lib.events import Event


class ConfItemAdded(Event, type_name="conf_item_added"):
    """The contract's everyday event."""


class ConfItemRemoved(Event, type_name="conf_item_removed"):
    """A second type, for type filters."""


class ConfRareThing(Event, type_name="conf_rare_thing"):
    """A third type, stored once, for filters that match little."""
