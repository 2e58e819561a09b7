"""Live play: a player on a MIDI input, the model answering on a MIDI output, in real time.

The transport layer, with no model in it: `ports` (devices by name, a MIDI file as the
player, in-process stand-ins), `clock` (real and test clocks), `messages` (the `Timed`
queue item), `scheduler` (the one thread that writes the output, and keeps no note
stuck), `listen` + `tempo` (the player's notes, pace, rests) and `record` (the session
as a MIDI file and sidecar). The model side feeds the scheduler through
`Scheduler.submit`; the scheduler thread never touches a model.
"""
