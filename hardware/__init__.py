"""Physical descriptors of devices and interconnects, and the costs they imply."""
