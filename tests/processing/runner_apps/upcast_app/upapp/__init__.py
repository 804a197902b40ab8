"""An application whose legacy events are upgraded by an upcaster that only an ``[app] events``
module registers: the projector's own module never imports it."""
