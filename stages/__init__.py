"""Thin DVC stage entry points: read params.yaml sections and inputs, call fraud/, write outs."""
