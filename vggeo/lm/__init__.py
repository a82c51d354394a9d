"""Lantmäteriet deliveries: packages, metadata, GML geometry, bestämmelser and inskrivning.

Public surface::

    open_delivery(path) -> Delivery          # outer ZIP, folder, set ZIP or one XML file
    read_bestammelser(source, *, ...) -> BestammelseData
    iter_bestammelser(source, *, ...) -> BestammelseParts   # the same, part by part
    read_inskrivning(source, *, personal_data=False, ...) -> InskrivningData
    inspect(source) -> InspectReport          # what `vggeo inspect` prints, as data
    read_delivery(source, *, ...) -> DeliveryTables   # every table, whatever the product
"""

from vggeo.lm.bestammelse import (
    BestammelseData,
    BestammelseParts,
    iter_bestammelser,
    read_bestammelser,
)
from vggeo.lm.dispatch import DeliveryTables, InspectReport, inspect, read_delivery
from vggeo.lm.inskrivning import InskrivningData, read_inskrivning
from vggeo.lm.package import Delivery, open_delivery

__all__ = [
    "open_delivery",
    "Delivery",
    "read_bestammelser",
    "iter_bestammelser",
    "BestammelseParts",
    "BestammelseData",
    "read_inskrivning",
    "InskrivningData",
    "inspect",
    "InspectReport",
    "read_delivery",
    "DeliveryTables",
]
