"""The one compiled module of vggeo: the compiled path's tree walk (vggeo/lm/_walk.pyx).

Everything else is declared in pyproject.toml. The module is optional: where it cannot be built
(no C compiler; Cython or lxml missing from a build without isolation), vggeo installs without it
and the compiled path applies the equivalent XSLT stylesheet instead.
"""

import sys

from setuptools import Extension, setup

try:
    import lxml
    from Cython.Build import cythonize
except ImportError as err:  # pyproject.toml's build requirements were not installed
    print(f"vggeo: building without its compiled module ({err})", file=sys.stderr)
    ext_modules = []
else:
    ext_modules = cythonize(
        [
            Extension(
                "vggeo.lm._walk",
                ["vggeo/lm/_walk.pyx"],
                # lxml's public C API and the libxml2 headers it was built with
                include_dirs=lxml.get_include(),
                optional=True,
            )
        ],
        compiler_directives={"language_level": "3"},
    )

setup(ext_modules=ext_modules)
