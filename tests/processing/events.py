"""Event classes of the processing tests (type names prefixed to stay unique)."""

from esctl_lib import Event


class ProcItemAdded(Event, type_name="proc_item_added"):
    pass


class ProcItemRemoved(Event, type_name="proc_item_removed"):
    pass


class ProcRareThing(Event, type_name="proc_rare_thing"):
    pass


class ProcItemNoticed(Event, type_name="proc_item_noticed"):
    pass


class ProcItemAudited(Event, type_name="proc_item_audited"):
    pass
