//! The Lambda binary under `cargo lambda watch` (the Runtime API emulator), with moto.
