"""Run by Debian's Python with python3-qgis (not our venv): load OGC API – Features layers the way
QGIS's "Add WFS / OGC API – Features layer" does.

Usage: python3 qgis_oapif_probe.py BASE_URL TYPENAME [TYPENAME …] — prints one JSON document:
per layer its validity, feature count, CRS, fields, and the attributes of a few features.
"""

import json
import os
import sys

from qgis.core import QgsApplication, QgsDataSourceUri, QgsFeatureRequest, QgsVectorLayer


def main(base, names):
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    out = {}
    for name in names:
        uri = QgsDataSourceUri()
        uri.setParam("url", base)
        uri.setParam("typename", name)
        layer = QgsVectorLayer(uri.uri(), name, "OAPIF")
        # (layer.error() is not read: in QGIS 3.22 the Python binding of it crashes)
        info = {"valid": layer.isValid()}
        if layer.isValid():
            features = list(layer.getFeatures(QgsFeatureRequest()))
            info.update(
                {
                    "count": layer.featureCount(),
                    "iterated": len(features),
                    "crs": layer.crs().authid(),
                    "fields": [f.name() for f in layer.fields()],
                    "sample": [
                        {
                            k: (v if isinstance(v, (int, float, str)) else None)
                            for k, v in zip(layer.fields().names(), f.attributes(), strict=True)
                        }
                        for f in features[:5]
                    ],
                }
            )
        out[name] = info
    print(json.dumps(out), flush=True)
    # QGIS 3.22 can crash while tearing down the OAPIF provider's threads: the result is out,
    # so leave without the teardown.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
