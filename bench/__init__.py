"""`python -m bench` (`make bench`): the hub measured against the bare libraries it is built on."""
