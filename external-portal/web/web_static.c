/*
 * The portal's one stylesheet, served as a file so the CSP can forbid
 * inline styles. The brand colour from the configuration is the only
 * variable part; it is checked to be a hex colour before it gets in.
 * Layout is one column on phones (from 360 px) and wider on desktops.
 */
#include <ctype.h>
#include <string.h>

#include "web/web_pages.h"
#include "web/web_routes.h"
#include "xmalloc.h"

static const char web_static_css_text[] =
":root{--brand:%s;--fg:#1a1a1a;--muted:#555;--bg:#fff;--line:#ccc}\n"
"*{box-sizing:border-box}\n"
"html{font-size:100%%}\n"
"body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,"
"sans-serif;color:var(--fg);background:var(--bg);line-height:1.5}\n"
".skip{position:absolute;left:-9999px}\n"
".skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:9}\n"
".top{display:flex;flex-wrap:wrap;align-items:center;justify-content:"
"space-between;gap:.5rem;padding:.5rem 1rem;background:var(--brand);"
"color:#fff}\n"
".top a,.top button.link{color:#fff}\n"
".brand{display:flex;align-items:center;gap:.5rem;font-weight:700;"
"text-decoration:none;font-size:1.15rem}\n"
"nav ul{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem;"
"list-style:none;margin:0;padding:0}\n"
"nav li{display:flex;align-items:center}\n"
".top button.link{margin:0;font:inherit;line-height:inherit}\n"
"svg.icon{vertical-align:-.15em}\n"
"main{max-width:72rem;margin:0 auto;padding:1rem}\n"
"h1{font-size:1.5rem;margin:.5rem 0 1rem}\n"
"h2{font-size:1.2rem}\n"
"a{color:#0645ad}\n"
"a:focus,button:focus,input:focus,textarea:focus,select:focus{outline:"
"3px solid #f90;outline-offset:2px}\n"
".field{display:flex;flex-direction:column;max-width:28rem}\n"
".field label{font-weight:600}\n"
"input[type=text],input[type=email],input[type=password],"
"input[type=file],textarea{font:inherit;padding:.5rem;border:1px solid "
"#767676;border-radius:4px;width:100%%}\n"
"textarea{min-height:12rem}\n"
"button,.button{display:inline-block;font:inherit;padding:.5rem 1rem;"
"border:0;border-radius:4px;background:var(--brand);color:#fff;"
"text-decoration:none;cursor:pointer;margin:.25rem 0}\n"
"button.link{background:none;padding:0;text-decoration:underline;"
"color:inherit}\n"
"button.danger{background:#b00020}\n"
"form.inline{display:inline}\n"
".error{color:#b00020;font-weight:600}\n"
".ok{color:#1b5e20;font-weight:600}\n"
".muted{color:var(--muted)}\n"
".msglist{width:100%%;border-collapse:collapse}\n"
".msglist th,.msglist td{text-align:left;padding:.4rem;border-bottom:1px "
"solid var(--line);vertical-align:top}\n"
".msglist tr.unread td{font-weight:700}\n"
".msglist td.size,.msglist td.date{white-space:nowrap}\n"
"@media (max-width:40rem){.msglist thead{display:none}\n"
".msglist tr{display:grid;grid-template-columns:2rem 1fr auto;"
"border-bottom:1px solid var(--line);padding:.3rem 0}\n"
".msglist td{border:0;padding:.1rem .3rem}\n"
".msglist td.sel{grid-row:span 3}\n"
".msglist td.subj{grid-column:2/4}\n"
".msglist td.size{display:none}}\n"
".headers{display:grid;grid-template-columns:max-content 1fr;gap:.2rem "
"1rem;margin:0 0 1rem}\n"
".headers dt{font-weight:600}\n"
".headers dd{margin:0;overflow-wrap:anywhere}\n"
"pre.text-plain{white-space:pre-wrap;overflow-wrap:anywhere;"
"font-family:inherit;border-top:1px solid var(--line);padding-top:1rem}\n"
"iframe.html-body{width:100%%;min-height:30rem;border:1px solid "
"var(--line)}\n"
".attachments li{margin:.3rem 0}\n"
".actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;"
"margin:1rem 0}\n"
".qr svg{max-width:200px;height:auto}\n"
".codes{font-family:monospace;font-size:1.1rem}\n"
".quota{margin-top:1rem}\n"
"code.secret{overflow-wrap:anywhere;font-size:1.1rem}\n"
".pdfpw{font-family:'DejaVu Sans Mono',monospace;font-size:2rem;"
"font-weight:700;user-select:all;-webkit-user-select:all;"
"padding:.5rem;border:2px solid var(--line);"
"border-radius:.4rem;display:inline-block;max-width:100%%}\n"
"[hidden]{display:none!important}\n"
".pdfpw span{margin-right:.6ch;display:inline-block}\n"
".pdfpw span:last-child{margin-right:0}\n"
".pdfmeta dt{font-weight:700}\n.pdfmeta dd{margin:0 0 .5rem}\n"
".pdflist{list-style:none;padding:0}\n"
".pdflist li{margin:.4rem 0}\n.pdflist .date,.pdflist .state"
"{color:var(--muted)}\n.hint{color:var(--muted)}\n"
".pdflist a{display:block;padding:.4rem 0;text-decoration:none}\n"
".pdflist .from{display:block;font-weight:700;text-decoration:underline}\n"
".pdflist .state::before{content:\"\\00b7  \"}\n"
".pdfactions a{margin-right:1rem}\n";

static int
web_static_colour_ok(const char *c)
{
	size_t n;

	if (c == NULL || c[0] != '#')
		return 0;
	n = strlen(c + 1);
	if (n != 3 && n != 6)
		return 0;
	for (size_t i = 1; i <= n; i++)
		if (!isxdigit((unsigned char)c[i]))
			return 0;
	return 1;
}

void
web_static_css(struct web_req *r)
{
	const char *colour = r->conf->colour;

	if (!web_static_colour_ok(colour))
		colour = "#1f4e79";
	r->ctype = xstrdup("text/css; charset=utf-8");
	web_header(r, "Cache-Control", "public, max-age=3600");
	web_buf_addf(&r->out, web_static_css_text, colour);
}
