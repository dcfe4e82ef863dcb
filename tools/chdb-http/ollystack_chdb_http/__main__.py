from ollystack_chdb_http import main

main()
