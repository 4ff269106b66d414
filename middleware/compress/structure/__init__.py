"""Structure found on the whole text before it is cut into passages, lines or units.

- `blocks`: JSON values (objects and arrays, bare, inside prose or in a code fence) and fenced code,
  the spans that no passage, line or sentence cut may fall inside;
- `jsonblock`: a JSON value as a tree of members, its units (a member is kept or dropped whole, a long
  string value is pruned inside) and its re-serialisation, always valid JSON;
- `markup`: HTML tags, inline code, paired delimiters (brackets, quotes, emphasis, bidi controls) whose
  two halves are kept or dropped together;
- `reasoning`: chain-of-thought lines: an equation is one unit, a demonstration's answer line is kept;
- `graphemes`: grapheme clusters (never cut) and the scripts written without spaces (never spaced).
"""
