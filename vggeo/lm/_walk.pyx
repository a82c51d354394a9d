# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The compiled path's stylesheet, walked in C: the same text records, without libxslt.

Why
    libxslt costs about 2 000 instructions per XPath evaluation whatever it computes (allocation
    and namespace-URI comparison, ``benchmarks/lm.md``); a provision of the second writer's files
    needs ~150 of them, so the stylesheet was 45 µs of a member's ~80 µs of CPU. The records it
    writes are made of a handful of operations on a parsed tree (the first child with one of a
    few names, the string value of an element, element counts, a structural signature), which a
    walk over libxml2's nodes does directly. No library offers that walk, so it is written here,
    over the tree lxml has already parsed (same parser, same safe settings): nothing here parses
    XML.

Contract
    :class:`Program` is built by :func:`vggeo.lm._compiled.compile_plan` from the same
    expressions as the stylesheet, and :meth:`Program.run` writes byte for byte what the
    stylesheet writes for the same tree (``tests/lm/test_walk.py`` compares them on every kind of
    member the compiled path's tests generate). Where the tree holds something the walk does
    not model (an entity reference, a node type other than elements and text), it returns None
    and the caller applies the stylesheet. Before a plan's walk is used, the chunk the plan was
    learnt from is transformed both ways and compared (:meth:`vggeo.lm._compiled.Plan.verify`).
"""

cimport cython
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, strcmp, strlen

cimport lxml.includes.etreepublic as cetree
from lxml.includes.tree cimport (
    XML_CDATA_SECTION_NODE,
    XML_ELEMENT_NODE,
    XML_TEXT_NODE,
    xmlAttr,
    xmlNode,
)

cetree.import_lxml__etree()

# --- the program ---------------------------------------------------------------------------------

cdef enum:
    MAX_DEPTH = 1024  # levels followed up from a node (libxml2 builds 256 at most without huge_tree)


cdef struct Name:
    const char* uri  # NULL: no namespace
    const char* local


cdef struct Union:
    int ctx  # -1: the feature; k >= 0: variable k; -2: the steps have different contexts
    int n
    int* ctxs  # per step
    Name* names


cdef struct Flag:
    int var  # >= 0: 1 when the variable is set, else 0; -1: count the union's matches
    Union u


cdef struct Prog:
    int n_chain
    Name* chain
    int n_vars
    Union* vars
    int n_cols
    Union* cols
    int n_flags
    Flag* flags
    bint has_refs
    Union refs
    Union ref_leaf
    bint has_decisions
    Union decisions
    int n_dcols
    Union* dcols
    int geometry  # variable index of the geometry property, or -1
    const char* gml32
    const char* gml3
    const char* fs
    const char* rs
    const char* ls
    const char* ds
    const char* empty


@cython.no_gc  # holds lists of bytes and addresses only: no cycles, and freed in __dealloc__
cdef class Program:
    """The stylesheet of one :class:`~vggeo.lm._compiled.Plan`, as data for the walk.

    Names are ``(uri or None, local)``; a step is ``(context, uri or None, local)`` with context
    -1 for the feature and k for variable k (always defined before it is used).
    """

    cdef Prog p
    cdef bint _ready  # __init__ completed
    cdef int _n_vars  # for checking the steps' contexts
    cdef list _keep  # the bytes objects the program's pointers point into
    cdef list _blocks  # malloc'd arrays

    def __cinit__(self):
        self._keep = []
        self._blocks = []

    def __dealloc__(self):
        cdef object b
        for b in self._blocks:
            free(<void*><size_t>b)

    cdef void* _alloc(self, Py_ssize_t size) except NULL:
        cdef void* m = malloc(size if size > 0 else 1)
        if m == NULL:
            raise MemoryError()
        self._blocks.append(<size_t>m)
        return m

    cdef const char* _str(self, object s) except? NULL:
        if s is None:
            return NULL
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        self._keep.append(b)
        return <const char*>b

    cdef void _name(self, Name* out, object name) except *:
        uri, local = name
        out.uri = self._str(uri)
        out.local = self._str(local)

    cdef void _union(self, Union* u, object steps) except *:
        steps = list(steps)
        u.n = len(steps)
        u.ctxs = <int*>self._alloc(sizeof(int) * u.n)
        u.names = <Name*>self._alloc(sizeof(Name) * u.n)
        u.ctx = -1
        cdef int i
        for i, (ctx, uri, local) in enumerate(steps):
            if not -1 <= ctx < self._n_vars:
                raise ValueError("a step's context must be the feature or a variable")
            u.ctxs[i] = ctx
            self._name(&u.names[i], (uri, local))
            if i == 0:
                u.ctx = ctx
            elif ctx != u.ctx:
                u.ctx = -2

    def __init__(
        self,
        *,
        chain,
        variables,
        columns,
        flags,
        refs,
        decisions,
        decision_columns,
        geometry,
        gml,
        separators,
        empty,
    ):
        cdef int i
        self._n_vars = len(variables)
        self.p.n_chain = len(chain)
        self.p.chain = <Name*>self._alloc(sizeof(Name) * len(chain))
        for i, name in enumerate(chain):
            self._name(&self.p.chain[i], name)
        self.p.n_vars = len(variables)
        self.p.vars = <Union*>self._alloc(sizeof(Union) * len(variables))
        for i, steps in enumerate(variables):
            self._union(&self.p.vars[i], steps)
            if self.p.vars[i].ctx < -1 or self.p.vars[i].ctx >= i:
                raise ValueError("a variable's steps must share one earlier context")
        self.p.n_cols = len(columns)
        self.p.cols = <Union*>self._alloc(sizeof(Union) * len(columns))
        for i, steps in enumerate(columns):
            self._union(&self.p.cols[i], steps)
        self.p.n_flags = len(flags)
        self.p.flags = <Flag*>self._alloc(sizeof(Flag) * len(flags))
        for i, (var, steps) in enumerate(flags):
            if not -1 <= var < self.p.n_vars:
                raise ValueError("a flag must name a variable or count steps")
            self.p.flags[i].var = var
            self._union(&self.p.flags[i].u, steps)
            if var < 0 and self.p.flags[i].u.ctx < -1:
                raise ValueError("a counted union's steps must share one context")
        self.p.has_refs = refs is not None
        self._union(&self.p.refs, refs[0] if refs is not None else ())
        self._union(&self.p.ref_leaf, [(-1, u, l) for u, l in refs[1]] if refs is not None else ())
        if self.p.has_refs and self.p.refs.ctx < -1:
            raise ValueError("references must share one context")
        self.p.has_decisions = decisions is not None
        self._union(&self.p.decisions, [(-1, u, l) for u, l in decisions or ()])
        self.p.n_dcols = len(decision_columns)
        self.p.dcols = <Union*>self._alloc(sizeof(Union) * len(decision_columns))
        for i, names in enumerate(decision_columns):
            self._union(&self.p.dcols[i], [(-1, u, l) for u, l in names])
        self.p.geometry = -1 if geometry is None else geometry
        if not -1 <= self.p.geometry < self.p.n_vars:
            raise ValueError("geometry must name a variable")
        self.p.gml32 = self._str(gml[0])
        self.p.gml3 = self._str(gml[1])
        fs, rs, ls, ds = separators
        self.p.fs = self._str(fs)
        self.p.rs = self._str(rs)
        self.p.ls = self._str(ls)
        self.p.ds = self._str(ds)
        self.p.empty = self._str(empty)
        self._ready = True

    def run(self, cetree._Element root not None):
        """The records of every member of the document ``root`` belongs to (UTF-8), or None
        when the tree holds something the walk does not model."""
        if not self._ready:
            raise ValueError("the program was not initialised")
        cdef xmlNode* top = root._c_node
        while top.parent != NULL and top.parent.type == XML_ELEMENT_NODE:
            top = top.parent
        cdef Buf b
        b.data = NULL
        b.len = 0
        b.cap = 0
        cdef int rc
        with nogil:
            rc = _run(&self.p, top, &b)
        try:
            if rc == -1:
                raise MemoryError()
            if rc != 0:
                return None
            return b.data[:b.len] if b.len else b""
        finally:
            free(b.data)


# --- output --------------------------------------------------------------------------------------


cdef struct Buf:
    char* data
    Py_ssize_t len
    Py_ssize_t cap


cdef int put(Buf* b, const char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t cap
    cdef char* data
    if b.len + n > b.cap:
        cap = b.cap * 2 if b.cap else 1 << 16
        while cap < b.len + n:
            cap *= 2
        data = <char*>realloc(b.data, cap)
        if data == NULL:
            return -1
        b.data = data
        b.cap = cap
    memcpy(b.data + b.len, s, n)
    b.len += n
    return 0


cdef inline int puts(Buf* b, const char* s) noexcept nogil:
    return put(b, s, strlen(s))


cdef int putn(Buf* b, long v) noexcept nogil:
    """A count as XPath's string() writes an integer."""
    cdef char tmp[24]
    cdef int i = 24
    cdef bint neg = v < 0
    if neg:
        v = -v
    while True:
        i -= 1
        tmp[i] = <char>(48 + v % 10)
        v //= 10
        if v == 0:
            break
    if neg:
        i -= 1
        tmp[i] = 45  # "-"
    return put(b, &tmp[i], 24 - i)


# --- the tree ------------------------------------------------------------------------------------


cdef inline bint named(xmlNode* n, Name* name) noexcept nogil:
    """An element of this expanded name (an XPath name test)."""
    if n.type != XML_ELEMENT_NODE or strcmp(<const char*>n.name, name.local) != 0:
        return False
    if name.uri == NULL:
        return n.ns == NULL
    return n.ns != NULL and n.ns.href != NULL and strcmp(<const char*>n.ns.href, name.uri) == 0


cdef inline bint in_union(xmlNode* n, Union* u, int ctx) noexcept nogil:
    cdef int i
    for i in range(u.n):
        if (ctx == -3 or u.ctxs[i] == ctx) and named(n, &u.names[i]):
            return True
    return False


cdef inline xmlNode* first_child(xmlNode* parent, Union* u, int ctx) noexcept nogil:
    """The first child of ``parent`` matching a step of context ``ctx`` (-3: any step)."""
    cdef xmlNode* c = parent.children
    while c != NULL:
        if c.type == XML_ELEMENT_NODE and in_union(c, u, ctx):
            return c
        c = c.next
    return NULL


cdef inline xmlNode* first_element(xmlNode* parent) noexcept nogil:
    cdef xmlNode* c = parent.children
    while c != NULL and c.type != XML_ELEMENT_NODE:
        c = c.next
    return c


cdef inline xmlNode* next_element(xmlNode* n) noexcept nogil:
    n = n.next
    while n != NULL and n.type != XML_ELEMENT_NODE:
        n = n.next
    return n


cdef inline xmlNode* context(xmlNode* feature, xmlNode** vars, int ctx) noexcept nogil:
    return feature if ctx == -1 else vars[ctx]


cdef int before(xmlNode* a, xmlNode* b) noexcept nogil:
    """1 when ``a`` comes before ``b`` in document order (both in one document), 0 when not,
    -1 when they lie deeper than the walk follows (libxml2 parses at most 256 levels)."""
    cdef xmlNode* pa[MAX_DEPTH]
    cdef xmlNode* pb[MAX_DEPTH]
    cdef int na = 0, nb = 0
    cdef xmlNode* n = a
    while n != NULL:
        if na == MAX_DEPTH:
            return -1
        pa[na] = n
        na += 1
        n = n.parent
    n = b
    while n != NULL:
        if nb == MAX_DEPTH:
            return -1
        pb[nb] = n
        nb += 1
        n = n.parent
    # from the top down to where the paths part
    while na > 0 and nb > 0 and pa[na - 1] == pb[nb - 1]:
        na -= 1
        nb -= 1
    if na == 0:
        return nb > 0  # a is an ancestor of b (or b itself)
    if nb == 0:
        return False
    n = pa[na - 1].next
    while n != NULL:
        if n == pb[nb - 1]:
            return True
        n = n.next
    return False


cdef xmlNode* first(Union* u, xmlNode* feature, xmlNode** vars, int* bad) noexcept nogil:
    """``(step | step | …)[1]``: the first node in document order that one of the steps selects
    (``bad`` set when document order could not be told)."""
    cdef xmlNode* ctxnode
    cdef xmlNode* best = NULL
    cdef xmlNode* hit
    cdef int i, j, order
    if u.n == 0:
        return NULL
    if u.ctx >= -1:
        ctxnode = context(feature, vars, u.ctx)
        return first_child(ctxnode, u, u.ctx) if ctxnode != NULL else NULL
    for i in range(u.n):
        for j in range(i):  # each context once
            if u.ctxs[j] == u.ctxs[i]:
                break
        else:
            ctxnode = context(feature, vars, u.ctxs[i])
            if ctxnode == NULL:
                continue
            hit = first_child(ctxnode, u, u.ctxs[i])
            if hit == NULL:
                continue
            if best == NULL:
                best = hit
                continue
            order = before(hit, best)
            if order < 0:
                bad[0] = 1
            elif order:
                best = hit
    return best


cdef int text_of(Buf* b, xmlNode* n) noexcept nogil:
    """Append the string value of an element's (or an attribute's) children, nothing for NULL
    (XPath's string value of an empty node-set): 0, -1 no memory, 1 something the walk does not
    model."""
    cdef int rc
    if n == NULL:
        return 0
    cdef xmlNode* c = n.children
    while c != NULL:
        if c.type == XML_TEXT_NODE or c.type == XML_CDATA_SECTION_NODE:
            if c.content != NULL and puts(b, <const char*>c.content):
                return -1
        elif c.type == XML_ELEMENT_NODE:
            rc = text_of(b, c)
            if rc:
                return rc
        else:
            return 1
        c = c.next
    return 0


cdef xmlAttr* attribute(xmlNode* n, const char* name) noexcept nogil:
    cdef xmlAttr* a = n.properties
    while a != NULL:
        if a.ns == NULL and strcmp(<const char*>a.name, name) == 0:
            return a
        a = a.next
    return NULL


cdef bint empty_attribute(xmlAttr* a) noexcept nogil:
    """Whether an attribute's value is '' (its children are text nodes, possibly none)."""
    cdef xmlNode* c = a.children
    while c != NULL:
        if c.content != NULL and c.content[0] != 0:
            return False
        c = c.next
    return True


cdef long descendants(xmlNode* n) noexcept nogil:
    cdef long k = 0
    cdef xmlNode* c = n.children
    while c != NULL:
        if c.type == XML_ELEMENT_NODE:
            k += 1 + descendants(c)
        c = c.next
    return k


cdef inline bint in_gml(Prog* p, const char* uri) noexcept nogil:
    return strcmp(uri, p.gml32) == 0 or strcmp(uri, p.gml3) == 0


cdef long data_attributes(Prog* p, xmlNode* n) noexcept nogil:
    """Attributes of ``n`` that may hold data (``vggeo.lm._records.data_attributes``): none on
    an element of GML's; on others, those outside the namespaces of GML, XML Schema instance and
    XML, other than srsName and srsDimension."""
    cdef long k = 0
    cdef xmlAttr* a = n.properties
    cdef const char* uri
    if a == NULL or (n.ns != NULL and n.ns.href != NULL and in_gml(p, <const char*>n.ns.href)):
        return 0
    while a != NULL:
        if a.ns == NULL or a.ns.href == NULL:
            # GEOMETRY_ATTRIBUTES: an ancestor of a geometry may state them
            if (
                strcmp(<const char*>a.name, "srsName") != 0
                and strcmp(<const char*>a.name, "srsDimension") != 0
            ):
                k += 1
        else:
            uri = <const char*>a.ns.href
            if not (
                in_gml(p, uri)
                or strcmp(uri, "http://www.w3.org/2001/XMLSchema-instance") == 0
                or strcmp(uri, "http://www.w3.org/XML/1998/namespace") == 0
            ):
                k += 1
        a = a.next
    return k


cdef long data_attributes_below(Prog* p, xmlNode* n) noexcept nogil:
    """:func:`data_attributes` of ``n`` and every element below it."""
    cdef long k = data_attributes(p, n)
    cdef xmlNode* c = n.children
    while c != NULL:
        if c.type == XML_ELEMENT_NODE:
            k += data_attributes_below(p, c)
        c = c.next
    return k


cdef long count_children(xmlNode* n, Name* name, Union* u) noexcept nogil:
    """Element children of ``n``: of one name, or matching one of a union's steps, or (both
    NULL) all of them."""
    cdef long k = 0
    cdef xmlNode* c = n.children
    while c != NULL:
        if c.type == XML_ELEMENT_NODE:
            if name != NULL:
                k += named(c, name)
            elif u != NULL:
                k += in_union(c, u, -3)
            else:
                k += 1
        c = c.next
    return k


cdef int signature(Prog* p, Buf* b, xmlNode* e) noexcept nogil:
    """The stylesheet's mode "s" template (``_SIGNATURE_TEMPLATE``) for one element."""
    cdef xmlAttr* dim
    cdef xmlNode* c
    cdef bint text = False
    cdef Py_ssize_t start, i
    cdef char ch
    cdef int rc
    if e.ns != NULL and e.ns.href != NULL and strcmp(<const char*>e.ns.href, p.gml32) == 0:
        rc = puts(b, "a:")
    elif e.ns != NULL and e.ns.href != NULL and strcmp(<const char*>e.ns.href, p.gml3) == 0:
        rc = puts(b, "b:")
    else:
        rc = puts(b, "c:")
    if rc or puts(b, <const char*>e.name):
        return -1
    dim = attribute(e, "srsDimension")
    if dim != NULL:
        if puts(b, "#"):
            return -1
        start = b.len
        rc = text_of(b, <xmlNode*>dim)
        if rc:
            return rc
        for i in range(start, b.len):  # translate(@srsDimension, '(),:#~', 'xxxxxx')
            ch = b.data[i]
            if ch == 40 or ch == 41 or ch == 44 or ch == 58 or ch == 35 or ch == 126:
                b.data[i] = 120
    c = e.children
    while c != NULL:
        if c.type == XML_TEXT_NODE or c.type == XML_CDATA_SECTION_NODE:
            text = True
        elif c.type != XML_ELEMENT_NODE:
            return 1
        c = c.next
    if not text and puts(b, "~"):
        return -1
    if puts(b, "("):
        return -1
    c = first_element(e)
    while c != NULL:
        rc = signature(p, b, c)
        if rc:
            return rc
        c = next_element(c)
    return puts(b, "),")


cdef inline bint is_poslist(Prog* p, xmlNode* n) noexcept nogil:
    if n.type != XML_ELEMENT_NODE or strcmp(<const char*>n.name, "posList") != 0:
        return False
    if n.ns == NULL or n.ns.href == NULL:
        return False
    return strcmp(<const char*>n.ns.href, p.gml32) == 0 or strcmp(<const char*>n.ns.href, p.gml3) == 0


cdef int poslists(Prog* p, Buf* b, xmlNode* n, long* k) noexcept nogil:
    """``$y//ga:posList | $y//gb:posList``: each text and a list separator, in document order."""
    cdef int rc
    cdef xmlNode* c = first_element(n)
    while c != NULL:
        if is_poslist(p, c):
            rc = text_of(b, c)
            if rc:
                return rc
            if puts(b, p.ls):
                return -1
            k[0] += 1
        rc = poslists(p, b, c, k)
        if rc:
            return rc
        c = next_element(c)
    return 0


cdef int record(Prog* p, Buf* b, xmlNode* f) noexcept nogil:
    """One feature's record: the ``for-each`` body of the stylesheet, up to its record separator."""
    cdef xmlNode* vars[256]
    cdef xmlNode* n
    cdef xmlNode* c
    cdef xmlNode* y
    cdef xmlNode* ctxnode
    cdef xmlAttr* a
    cdef long nrefs = 0, ndec = 0, npos = 0
    cdef int i, j, rc
    cdef int bad = 0
    if p.n_vars > 256:
        return 1
    for i in range(p.n_vars):
        vars[i] = first(&p.vars[i], f, vars, &bad)
    # the elements below the feature, and its data attributes (which no record shows, so a
    # member holding any goes to the Extractor)
    if putn(b, descendants(f) + data_attributes_below(p, f)) or puts(b, p.fs):
        return -1
    if puts(b, <const char*>f.name) or puts(b, p.fs):
        return -1
    for i in range(p.n_cols):
        rc = text_of(b, first(&p.cols[i], f, vars, &bad))
        if rc:
            return rc
        if puts(b, p.fs):
            return -1
    for i in range(p.n_flags):
        if p.flags[i].var >= 0:
            rc = puts(b, "1") if vars[p.flags[i].var] != NULL else puts(b, "0")
        else:
            ctxnode = context(f, vars, p.flags[i].u.ctx) if p.flags[i].u.n else NULL
            rc = putn(b, count_children(ctxnode, NULL, &p.flags[i].u) if ctxnode != NULL else 0)
        if rc:
            return -1
    if puts(b, p.fs):
        return -1
    if p.has_refs and p.refs.n:
        ctxnode = context(f, vars, p.refs.ctx)
        if ctxnode != NULL:
            c = first_element(ctxnode)
            while c != NULL:
                if in_union(c, &p.refs, -3):
                    nrefs += 1
                    rc = text_of(b, first_child(c, &p.ref_leaf, -3))
                    if rc:
                        return rc
                    if puts(b, p.ls):
                        return -1
                c = next_element(c)
    if puts(b, p.fs):
        return -1
    if p.has_decisions and p.decisions.n:
        c = first_element(f)
        while c != NULL:
            if in_union(c, &p.decisions, -3):
                ndec += 1
                if puts(b, <const char*>c.name):
                    return -1
                for j in range(p.n_dcols):
                    if puts(b, p.ds):
                        return -1
                    rc = text_of(b, first_child(c, &p.dcols[j], -3))
                    if rc:
                        return rc
                if puts(b, p.ls):
                    return -1
            c = next_element(c)
    if puts(b, p.fs):
        return -1
    if p.geometry >= 0:
        y = vars[p.geometry]
        c = first_element(y) if y != NULL else NULL
        if c != NULL:  # $y/*[1]/ancestor::*[@srsDimension][1]
            n = c.parent
            while n != NULL and n.type == XML_ELEMENT_NODE:
                a = attribute(n, "srsDimension")
                if a != NULL:
                    if puts(b, "#"):
                        return -1
                    rc = text_of(b, <xmlNode*>a)
                    if rc:
                        return rc
                    break
                n = n.parent
        if puts(b, p.fs):
            return -1
        if c != NULL:  # $y/*[1]/ancestor-or-self::*[@srsName != ''][1]/@srsName
            n = c
            while n != NULL and n.type == XML_ELEMENT_NODE:
                a = attribute(n, "srsName")
                if a != NULL and not empty_attribute(a):
                    rc = text_of(b, <xmlNode*>a)
                    if rc:
                        return rc
                    break
                n = n.parent
        if puts(b, p.fs):
            return -1
        if y != NULL:
            if puts(b, "Y"):
                return -1
            c = first_element(y)
            while c != NULL:
                rc = signature(p, b, c)
                if rc:
                    return rc
                c = next_element(c)
        if puts(b, p.fs):
            return -1
        if y != NULL:
            rc = poslists(p, b, y, &npos)
            if rc:
                return rc
    else:
        for i in range(3):
            if puts(b, p.fs):
                return -1
    if puts(b, p.fs) or putn(b, nrefs) or puts(b, ":") or putn(b, ndec) or puts(b, ":"):
        return -1
    if putn(b, npos) or puts(b, p.rs):
        return -1
    return 1 if bad else 0


cdef int features(Prog* p, Buf* b, xmlNode* n, int level, bint* any) noexcept nogil:
    """``for-each select="{chain}*[1]"``: the first element of every node the chain reaches."""
    cdef xmlNode* c
    cdef int rc
    if level == p.n_chain:
        c = first_element(n)
        if c != NULL:
            any[0] = True
            return record(p, b, c)
        return 0
    c = first_element(n)
    while c != NULL:
        if named(c, &p.chain[level]):
            rc = features(p, b, c, level + 1, any)
            if rc:
                return rc
        c = next_element(c)
    return 0


cdef bint one_feature(Prog* p, xmlNode* m) noexcept nogil:
    """The stylesheet's ``one`` test for a member with grouping levels."""
    cdef xmlNode* n = m
    cdef xmlNode* c
    cdef int i
    if count_children(m, NULL, NULL) != 1 or data_attributes(p, m):
        return False
    for i in range(p.n_chain):
        if count_children(n, &p.chain[i], NULL) != 1:
            return False
        c = first_element(n)
        while not named(c, &p.chain[i]):
            c = next_element(c)
        if count_children(c, NULL, NULL) != 1 or data_attributes(p, c):
            return False
        n = c
    return True


cdef int _run(Prog* p, xmlNode* top, Buf* b) noexcept nogil:
    cdef xmlNode* m = first_element(top)
    cdef int rc
    cdef bint any
    while m != NULL:
        if puts(b, <const char*>m.name) or puts(b, p.fs):
            return -1
        if p.n_chain == 0:
            rc = putn(b, count_children(m, NULL, NULL) + data_attributes(p, m))
        else:
            rc = puts(b, "1") if one_feature(p, m) else puts(b, "0")
        if rc or puts(b, p.fs):
            return -1
        any = False
        rc = features(p, b, m, 0, &any)
        if rc:
            return rc
        if not any and puts(b, p.empty):
            return -1
        m = next_element(m)
    return 0
