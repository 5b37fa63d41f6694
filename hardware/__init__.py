"""Physical descriptors of devices and interconnects, and the costs they imply.

Installed as :mod:`pipesim.hardware` (docs/model.md §5.2):

* :mod:`~pipesim.hardware.units` — quantities written as datasheets write them;
* :mod:`~pipesim.hardware.devices` — device types, links, device groups, systems;
* :mod:`~pipesim.hardware.costs` — roofline kernel times, transfer times, node memory;
* :mod:`~pipesim.hardware.catalog` — YAML descriptions and the built-in presets;
* :mod:`~pipesim.hardware.whatif` — edits such as "twice the link bandwidth".

This package imports nothing from :mod:`pipesim.placement` or the rest of
:mod:`pipesim` except :mod:`pipesim.errors`.
"""
