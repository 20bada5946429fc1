"""The ``milmer`` command: the one place above the runtime, training, export and benchmark layers."""
