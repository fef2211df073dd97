; Inno Setup script: the Windows installer people double-click.
;
;   iscc /DAppVersion=0.1.0 /DSourceDir=<repo>\dist\civdesk /DOutputDir=<repo>\dist civdesk.iss
;
; builds <OutputDir>\civdesk-<version>-setup.exe from the PyInstaller folder (`make app`).
; A per-user install: no administrator rights, into %LOCALAPPDATA%\Programs\civdesk, with a
; Start-menu entry, an optional desktop icon, and an uninstaller in Settings → Apps. The
; uninstaller removes the program only: the library, settings and models stay where they are
; (%LOCALAPPDATA%\civdesk and the user's model folders).

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=<civdesk.__version__>
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\civdesk"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
; The AppId identifies the app across versions (upgrades, uninstall): never change it.
AppId={{6C1F3E52-3D8B-4D0B-9B0E-2B6A4C1D7E91}
AppName=civdesk
AppVersion={#AppVersion}
AppVerName=civdesk {#AppVersion}
AppPublisher=civdesk developers
AppPublisherURL=https://github.com/civdesk/civdesk
VersionInfoVersion={#AppVersion}
VersionInfoProductName=civdesk
VersionInfoDescription=civdesk installer
DefaultDirName={autopf}\civdesk
DefaultGroupName=civdesk
DisableProgramGroupPage=yes
; Per user, no UAC prompt: {autopf} is then %LOCALAPPDATA%\Programs.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile=..\..\resources\icons\civdesk.ico
UninstallDisplayIcon={app}\civdesk.exe
UninstallDisplayName=civdesk
OutputDir={#OutputDir}
OutputBaseFilename=civdesk-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; A running civdesk holds its files open: ask it to close before replacing them.
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\civdesk"; Filename: "{app}\civdesk.exe"
Name: "{group}\{cm:UninstallProgram,civdesk}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\civdesk"; Filename: "{app}\civdesk.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\civdesk.exe"; Description: "{cm:LaunchProgram,civdesk}"; Flags: nowait postinstall skipifsilent
