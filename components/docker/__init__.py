"""The dev stack on a Docker engine: network, stores, tracking server and proxy."""
