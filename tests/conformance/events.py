"""Event classes used by the conformance suite (type names prefixed to stay unique)."""

from esctl_lib import Event


class ConfItemAdded(Event, type_name="conf_item_added"):
    pass


class ConfItemRemoved(Event, type_name="conf_item_removed"):
    pass


class ConfRareThing(Event, type_name="conf_rare_thing"):
    pass
