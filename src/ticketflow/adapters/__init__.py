"""Adapters: storage, clocks and everything else that touches the outside world."""
