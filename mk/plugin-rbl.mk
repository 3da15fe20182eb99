plugin-rbl_LIBS = -lresolv
rbl_dnstxt_LIBS = -lresolv
