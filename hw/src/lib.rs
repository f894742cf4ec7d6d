//! Accelerator detection and board profiles (being written).
