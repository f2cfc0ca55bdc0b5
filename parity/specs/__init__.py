"""Course model specs, one module per course part; `parity.catalog` collects them."""
