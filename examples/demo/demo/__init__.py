"""The wsgate demo: a Django site configured only through INI files, with
Mercurial's hgweb and Trac embedded behind Django's single sign-on."""
