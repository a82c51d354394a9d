"""The one compiled module of vggeo: the compiled path's tree walk (vggeo/lm/_walk.pyx).

Everything else is declared in pyproject.toml. The module is optional: where it cannot be built
(no C compiler), vggeo installs without it and applies the equivalent XSLT stylesheet instead.
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
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
)
