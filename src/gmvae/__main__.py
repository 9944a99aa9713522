from gmvae.cli.app import main

main()
