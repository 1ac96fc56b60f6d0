"""One module per op: the public function, its custom autograd over backend primitives, and its reference."""
