"""Live inference: an LSL EEG stream and a camera in, one decision per window out as it happens.

``milmer live`` (:func:`~.session.run_live`) runs the offline preprocessing and scoring on
rolling buffers: :mod:`.lsl` (the EEG stream, the output outlet), :mod:`.video` (camera, network
stream or file, frames stamped in the LSL clock), :mod:`.buffers`, :mod:`.eeg` (calibrated ICA,
per-window filtering), :mod:`.faces`, :mod:`.engine` (windows, readiness, skips, latency),
:mod:`.output` (JSON lines, LSL outlet, terminal view) and :mod:`.record` (``--record``). LSL
comes from the ``live`` extra (pylsl), imported only when a session starts.
"""
