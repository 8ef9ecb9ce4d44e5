from augment.cli import main

if __name__ == "__main__":  # a process that multiprocessing spawns imports this too
    main()
