"""Generation backends: :class:`~bot.backends.wavespeed.WaveSpeedBackend` (hosted, billed) and
:class:`~bot.backends.acestep.AceStepBackend` (self-hosted engine), both implementing
:class:`bot.ports.Backend`. Selection from settings is wired by the application."""
