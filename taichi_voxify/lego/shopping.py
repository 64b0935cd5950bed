"""The bill of materials and two shopping lists that import it: Rebrickable's CSV (part number,
Rebrickable colour id, quantity) and a BrickLink wanted list (XML; BrickLink item number and
colour id). Each list holds one line per (part, colour): model and support parts together."""
import csv
import io
from collections import Counter
from xml.etree import ElementTree

BOM_COLUMNS = ("part_num", "part_name", "color_name", "rebrickable_color_id",
               "lego_color_number", "bricklink_color_id", "bricklink_item", "count", "use")


def bom_csv(plan):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BOM_COLUMNS)
    for line in plan.bom():
        p, c = line.part, line.color
        writer.writerow([p.part_num, p.name, c.name, c.rebrickable_id, c.lego_number,
                         c.bricklink_id, p.bricklink_item, line.count,
                         "support" if line.support else "model"])
    return out.getvalue()


def to_buy(plan):
    """[(Part, LegoColor, count)] one line per part and colour, in BOM order."""
    tally = Counter()
    for line in plan.bom():
        tally[(line.part, line.color)] += line.count
    return [(part, color, n) for (part, color), n in tally.items()]


def rebrickable_csv(plan):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Part", "Color", "Quantity"])
    writer.writerows([p.part_num, c.rebrickable_id, n] for p, c, n in to_buy(plan))
    return out.getvalue()


def bricklink_xml(plan):
    inventory = ElementTree.Element("INVENTORY")
    for p, c, n in to_buy(plan):
        item = ElementTree.SubElement(inventory, "ITEM")
        for tag, value in (("ITEMTYPE", "P"), ("ITEMID", p.bricklink_item),
                           ("COLOR", c.bricklink_id), ("MINQTY", n)):
            ElementTree.SubElement(item, tag).text = str(value)
    ElementTree.indent(inventory)
    return ElementTree.tostring(inventory, encoding="unicode") + "\n"
