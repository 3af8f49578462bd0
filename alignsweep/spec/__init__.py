"""The spec: a sweep YAML validated completely (config), expanded into trial plans (plan), and its
inputs checked (preflight) — all before Ray starts."""
