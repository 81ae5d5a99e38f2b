"""Amazon's SP-API models, shipped as data (see NOTICE.md)."""
