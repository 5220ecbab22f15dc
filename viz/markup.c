/* markup.c: text for the HTML page and the SVG figures, escaped once for both, so that a
 * name from a config or a ground truth reads the same in a browser and an XML parser. */
#include "viz.h"

void viz_put_escaped(FILE *fp, const char *s) {
    for (; s && *s; s++)
        switch (*s) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        /* a numeric reference: HTML 4 has no &apos;, XML and HTML 5 read both */
        case '\'': fputs("&#39;", fp); break;
        default:
            /* XML 1.0 holds no other C0 control byte, not even as a reference */
            if ((unsigned char)*s >= 0x20 || *s == '\t' || *s == '\n' || *s == '\r')
                fputc(*s, fp);
        }
}
