//! Codec tests: every frame, escaping, truncation, limits, round trips.
