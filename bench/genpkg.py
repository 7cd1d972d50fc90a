#!/usr/bin/env python3
"""Generate a deterministic APS 1.2 package source folder for the apsctl benchmarks.

The folder looks like a mid-sized PHP application: PHP-like source files of varied sizes (most
of the files, about 60% of the bytes) and some binary-ish files (images, fonts, archives: some
incompressible, some compressible), spread over a few hundred nested folders below `htdocs/`.
The same seed always gives the same bytes. No APP-LIST.xml is written: `apsctl package build`
adds it.

Usage: genpkg.py OUT_DIR [--files N] [--megabytes M] [--seed S] [--mysql]
"""

import argparse
import os
import random
import struct
import sys
import zlib

META = """<?xml version="1.0" encoding="UTF-8"?>
<application xmlns="http://apstandard.com/ns/1" version="1.2">
  <id>https://apsctl.example/packages/bench</id>
  <name>Bench APS</name>
  <version>1.0.0</version>
  <release>1</release>
  <homepage>https://apsctl.example/</homepage>
  <vendor>
    <name>apsctl project</name>
  </vendor>
  <packager>
    <name>apsctl project</name>
    <uri>uuid:0b6c1d5e-2f7a-4c1b-9a55-7d3e8f90b1c2</uri>
  </packager>
  <presentation>
    <summary>A generated PHP application used to benchmark apsctl.</summary>
    <description>Thousands of generated PHP-like files and some binary files; the
      configuration script does nothing.</description>
    <icon path="images/icon.png"/>
    <categories>
      <category>Samples/Bench</category>
    </categories>
    <languages>
      <language>en</language>
    </languages>
  </presentation>
  <service id="bench">
    <license must-accept="true">
      <free/>
      <text>
        <name>MIT License</name>
        <file>LICENSE.txt</file>
      </text>
    </license>
    <presentation>
      <name>Bench APS</name>
      <summary>Does nothing, with many files.</summary>
      <entry-points>
        <entry dst="/" class="frontpage">
          <label>Front page</label>
        </entry>
      </entry-points>
    </presentation>
    <settings>
      <group class="authn">
        <name>Administrator</name>
        <setting id="admin_name" type="string" default-value="admin" min-length="1" max-length="32" regex="^[a-zA-Z0-9_]+$" class="login">
          <name>Administrator login</name>
        </setting>
        <setting id="admin_password" type="password" min-length="8" installation-only="true" class="password">
          <name>Administrator password</name>
        </setting>
      </group>
      <setting id="title" type="string" default-value="Bench" max-length="80">
        <name>Site title</name>
      </setting>
    </settings>
    <requirements xmlns:php="http://apstandard.com/ns/1/php">
      <php:version min="7.0"/>{db_requirement}
    </requirements>
    <provision>
      <url-mapping>
        <default-prefix>bench</default-prefix>
        <installed-size>{installed_size}</installed-size>
        <mapping url="/" path="htdocs" xmlns:php="http://apstandard.com/ns/1/php">
          <php:handler>
            <php:extension>php</php:extension>
          </php:handler>
          <mapping url="data">
            <php:permissions writable="true"/>
          </mapping>
        </mapping>
      </url-mapping>
      <configuration-script name="configure">
        <script-language>php</script-language>
      </configuration-script>
    </provision>
  </service>
</application>
"""

CONFIGURE = """<?php
// Configuration script of the benchmark package: accepts every action and does nothing.
exit(0);
"""

LICENSE = """MIT License

Copyright (c) apsctl project

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
"""

WORDS = (
    "user account session cache config request response router module theme plugin widget "
    "field form table query record entity repository service factory handler event listener "
    "value item list map node tree path file folder image upload download mail message token "
    "auth login logout password role permission group member profile setting option locale "
    "translation string number date time stamp version release package vendor loader stream "
    "buffer reader writer parser lexer token block page post comment tag category search index "
    "filter sort limit offset count total result error warning notice debug log trace"
).split()

TEMPLATES = (
    "    ${a} = ${b}->get{A}('{c}');",
    "    ${a} = isset(${b}['{c}']) ? ${b}['{c}'] : null;",
    "    if (${a} === null || !is_array(${b})) {{",
    "        return $this->{a}{B}(${c}, {n});",
    "    }}",
    "    foreach (${a}s as ${b} => ${c}) {{",
    "        ${a}[] = new {A}{B}(${c}, '{d}_{e}');",
    "    $this->{a} = array_merge($this->{a}, ${b});",
    "    throw new \\InvalidArgumentException(sprintf('Unknown {a} \"%s\" in {b}', ${c}));",
    "    // {A} the {b} of the {c} before the {d} is {e}ed.",
    "     * @param {A}{B} ${c} The {d} to {e}.",
    "     * @return {A}|null",
    "    public function {a}{B}{C}(${d}, ${e} = {n})",
    "    protected function {a}{B}(array ${c}): ?{D}",
    "    private static ${a}{B} = array('{c}' => {n}, '{d}' => '{e}');",
    "    $sql = \"SELECT {a}_id, {b} FROM {{$prefix}}{c} WHERE {d} = ? LIMIT {n}\";",
    "        $result .= '<div class=\"{a}-{b}\">' . htmlspecialchars(${c}) . '</div>';",
    "    return ${a} instanceof {A}{B}Interface ? ${a}->{c}() : false;",
    "    define('{A}_{B}_{C}', {n});",
    "    ${a}{B} = (int) ${c}['{d}'] + {n};",
    "",
    "}}",
)


def php_pool(rng, count):
    """A pool of distinct PHP-like lines built from the templates and the words."""
    pool = []
    for _ in range(count):
        w = [rng.choice(WORDS) for _ in range(5)]
        fields = {k: w[i] for i, k in enumerate("abcde")}
        fields.update({k.upper(): w[i].capitalize() for i, k in enumerate("abcde")})
        fields["n"] = rng.randrange(1000)
        pool.append(rng.choice(TEMPLATES).format(**fields))
    return pool


def php_text(rng, pool, size, name):
    """About `size` bytes of PHP-like text (exactly `size` bytes, cut at the end)."""
    head = "<?php\n/**\n * {}\n *\n * Generated for the apsctl benchmark.\n */\n\nnamespace Bench\\{};\n\nclass {} {{\n".format(
        name, rng.choice(WORDS).capitalize(), name.split(".")[0].replace("-", "_").capitalize()
    )
    parts = [head]
    length = len(head)
    while length < size:
        lines = rng.choices(pool, k=64)
        chunk = "\n".join(lines) + "\n"
        parts.append(chunk)
        length += len(chunk)
    return "".join(parts).encode()[:size]


def binary(rng, size):
    """`size` binary-ish bytes: two thirds incompressible (images, archives), one third
    compressible (fonts, tables)."""
    if rng.random() < 0.66:
        return rng.randbytes(size)
    record = rng.randbytes(rng.randrange(16, 96))
    out = bytearray()
    while len(out) < size:
        out += record
        out += rng.randbytes(8)
    return bytes(out[:size])


def png(width, height, rgb):
    """A small valid PNG of one colour."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def folders(rng, count):
    """`count` nested folders below htdocs/, like an application with a vendor tree."""
    tops = ["lib", "modules", "themes", "vendor", "includes", "admin", "assets", "plugins"]
    dirs = ["htdocs", "htdocs/data"] + ["htdocs/" + t for t in tops]
    while len(dirs) < count:
        parent = rng.choice(dirs[2:])
        if parent.count("/") >= 6:
            continue
        child = "{}/{}{}".format(parent, rng.choice(WORDS), rng.randrange(100))
        if child not in dirs:
            dirs.append(child)
    return dirs


def sizes(rng, count, total, median, sigma):
    """`count` log-normal sizes scaled to sum to about `total` bytes."""
    raw = [rng.lognormvariate(0, sigma) * median for _ in range(count)]
    scale = total / sum(raw)
    return [max(64, int(s * scale)) for s in raw]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--megabytes", type=float, default=50)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--mysql", action="store_true",
                        help="declare a MariaDB/MySQL database (db:id `main`)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    if os.path.exists(args.out) and os.listdir(args.out):
        sys.exit(f"genpkg.py: `{args.out}` exists and is not empty")
    total = int(args.megabytes * 1_000_000)
    fixed = 4  # APP-META.xml, LICENSE.txt, images/icon.png, scripts/configure
    count = args.files - fixed
    n_binary = count // 10
    n_text = count - n_binary
    text_sizes = sizes(rng, n_text, total * 0.6, 6000, 1.0)
    bin_sizes = sizes(rng, n_binary, total * 0.4, 30000, 1.2)
    pool = php_pool(rng, 20000)
    dirs = folders(rng, 300)
    exts = [".png", ".jpg", ".gif", ".woff2", ".ttf", ".zip", ".pdf"]
    written = 0

    def write(rel, data):
        nonlocal written
        path = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        written += len(data)

    for i, size in enumerate(text_sizes):
        name = "index.php" if i == 0 else "{}-{}{}.php".format(rng.choice(WORDS), rng.choice(WORDS), i)
        rel = "htdocs/index.php" if i == 0 else "{}/{}".format(rng.choice(dirs), name)
        write(rel, php_text(rng, pool, size, name))
    for i, size in enumerate(bin_sizes):
        rel = "{}/{}{}{}".format(rng.choice(dirs), rng.choice(WORDS), i, rng.choice(exts))
        write(rel, binary(rng, size))
    code_bytes = written
    db = ("""
      <db:db xmlns:db="http://apstandard.com/ns/1/db">
        <db:id>main</db:id>
        <db:default-name>bench</db:default-name>
        <db:server-type>mysql</db:server-type>
        <db:server-min-version>5.0</db:server-min-version>
      </db:db>""" if args.mysql else "")
    write("APP-META.xml", META.format(installed_size=code_bytes, db_requirement=db).encode())
    write("LICENSE.txt", LICENSE.encode())
    write("images/icon.png", png(32, 32, (40, 120, 200)))
    write("scripts/configure", CONFIGURE.encode())
    print(f"{args.out}: {args.files} files, {written} bytes, {len(dirs)} folders")


if __name__ == "__main__":
    main()
