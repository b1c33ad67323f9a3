from omniroute_devservers.servers import main

main()
