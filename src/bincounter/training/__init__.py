"""Training-side pieces of the core. Importing this package imports nothing;
the torch modules (data, models, export, report, debugger) load on use."""
